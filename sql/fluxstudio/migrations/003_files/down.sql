-- pgops:destructive
DROP TABLE file_permissions;
DROP TABLE files;
DROP TABLE project_milestones;
DROP TABLE project_members;
