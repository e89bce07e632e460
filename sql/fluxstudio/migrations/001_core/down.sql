-- pgops:destructive
DROP TABLE projects;
DROP TABLE team_members;
DROP TABLE teams;
DROP TABLE organization_members;
DROP TABLE organizations;
DROP TABLE users;
