DROP TABLE child_profile_v2;
