DROP TABLE savings_goals;
DROP TABLE expenses;
DROP TABLE budget_categories;
