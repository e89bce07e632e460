DROP TABLE organization_members;
DROP TABLE organizations;
DROP TYPE invitation_status;
DROP TYPE subscription_status;
DROP TYPE org_role;
