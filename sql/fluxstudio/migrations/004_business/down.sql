-- pgops:destructive
DROP TABLE portfolio_items;
DROP TABLE portfolios;
DROP TABLE time_entries;
DROP TABLE invoices;
DROP TABLE client_requests;
DROP TABLE service_packages;
