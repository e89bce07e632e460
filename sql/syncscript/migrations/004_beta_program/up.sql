-- SyncScript (seed 000) §4 Beta Program.
CREATE TABLE beta_users (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users(id) ON DELETE CASCADE,
  tier VARCHAR(50) NOT NULL,
  testing_focus TEXT[],
  feedback_count INTEGER DEFAULT 0,
  status VARCHAR(20) DEFAULT 'active',
  joined_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  last_active TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  preferences JSONB DEFAULT '{}'
);

CREATE INDEX idx_beta_users_user_id ON beta_users(user_id);
CREATE INDEX idx_beta_users_tier ON beta_users(tier);
CREATE INDEX idx_beta_users_status ON beta_users(status);

CREATE TABLE feedback_submissions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users(id) ON DELETE CASCADE,
  feature VARCHAR(100) NOT NULL,
  rating INTEGER CHECK (rating >= 1 AND rating <= 5),
  feedback TEXT,
  suggestions TEXT[],
  category VARCHAR(50) NOT NULL,
  priority VARCHAR(20) DEFAULT 'medium',
  status VARCHAR(20) DEFAULT 'submitted',
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE INDEX idx_feedback_submissions_user_id ON feedback_submissions(user_id);
CREATE INDEX idx_feedback_submissions_feature ON feedback_submissions(feature);
CREATE INDEX idx_feedback_submissions_rating ON feedback_submissions(rating);
CREATE INDEX idx_feedback_submissions_created ON feedback_submissions(created_at);

CREATE TABLE testing_sessions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users(id) ON DELETE CASCADE,
  feature VARCHAR(100) NOT NULL,
  start_time TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  end_time TIMESTAMP WITH TIME ZONE,
  completion_rate DECIMAL(5,2) DEFAULT 0,
  satisfaction INTEGER CHECK (satisfaction >= 1 AND satisfaction <= 5),
  actions JSONB DEFAULT '[]',
  metadata JSONB DEFAULT '{}'
);

CREATE INDEX idx_testing_sessions_user_id ON testing_sessions(user_id);
CREATE INDEX idx_testing_sessions_feature ON testing_sessions(feature);
CREATE INDEX idx_testing_sessions_start_time ON testing_sessions(start_time);
