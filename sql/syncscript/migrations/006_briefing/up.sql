-- SyncScript (seed 000) §6 Briefing System.
CREATE TABLE briefing_settings (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users(id) ON DELETE CASCADE,
  morning_brief_enabled BOOLEAN DEFAULT TRUE,
  evening_brief_enabled BOOLEAN DEFAULT TRUE,
  morning_time TIME DEFAULT '08:00',
  evening_time TIME DEFAULT '18:00',
  content_modules JSONB DEFAULT '{}',
  delivery_channels JSONB DEFAULT '{}',
  tone VARCHAR(20) DEFAULT 'professional',
  frequency VARCHAR(20) DEFAULT 'daily',
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE INDEX idx_briefing_settings_user_id ON briefing_settings(user_id);

CREATE TABLE briefing_history (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users(id) ON DELETE CASCADE,
  briefing_type VARCHAR(20) NOT NULL,
  content JSONB NOT NULL,
  generated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  viewed_at TIMESTAMP WITH TIME ZONE,
  is_viewed BOOLEAN DEFAULT FALSE
);

CREATE INDEX idx_briefing_history_user_id ON briefing_history(user_id);
CREATE INDEX idx_briefing_history_type ON briefing_history(briefing_type);
CREATE INDEX idx_briefing_history_generated ON briefing_history(generated_at);
