DROP TABLE surprise_video;
DROP TABLE surprise_collection_v2;
ALTER TABLE child_profile_v2 DROP CONSTRAINT child_profile_v2_avatar_asset_fk;
DROP TABLE media_asset;
