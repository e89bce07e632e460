-- Enterprise tenancy: organizations (domain auto-join, subscription, settings and branding) and their members
-- (roles, invitations).
CREATE TYPE org_role AS ENUM ('owner', 'admin', 'member', 'viewer');
CREATE TYPE subscription_status AS ENUM ('trialing', 'active', 'past_due', 'canceled');
CREATE TYPE invitation_status AS ENUM ('pending', 'accepted', 'declined', 'revoked', 'expired');

CREATE TABLE organizations (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                 text NOT NULL,
    slug                 text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    domain               text UNIQUE CHECK (domain = lower(domain)),  -- e-mail domain whose users may auto-join
    auto_join_enabled    boolean NOT NULL DEFAULT false,
    auto_join_role       org_role NOT NULL DEFAULT 'member' CHECK (auto_join_role IN ('member', 'viewer')),
    subscription_plan    text NOT NULL DEFAULT 'team' CHECK (subscription_plan IN ('team', 'business', 'enterprise')),
    subscription_status  subscription_status NOT NULL DEFAULT 'trialing',
    seats                integer NOT NULL DEFAULT 5 CHECK (seats > 0),
    billing_customer_id  text,
    current_period_ends  timestamptz,
    settings             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    branding             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(branding) = 'object'),
    created_by           uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organizations_auto_join_needs_domain CHECK (NOT auto_join_enabled OR domain IS NOT NULL)
);
CREATE INDEX organizations_created_by_idx ON organizations (created_by);

CREATE TABLE organization_members (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id           uuid REFERENCES users (id) ON DELETE CASCADE,   -- NULL while an invitation is pending
    role              org_role NOT NULL DEFAULT 'member',
    invited_email     varchar(255),
    invited_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    invitation_status invitation_status NOT NULL DEFAULT 'accepted',
    invitation_token  text UNIQUE,
    invited_at        timestamptz,
    joined_at         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organization_members_who CHECK (user_id IS NOT NULL OR invited_email IS NOT NULL),
    CONSTRAINT organization_members_accepted_has_user CHECK (invitation_status <> 'accepted' OR user_id IS NOT NULL)
);
CREATE UNIQUE INDEX organization_members_org_user_key ON organization_members (organization_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX organization_members_user_id_idx ON organization_members (user_id);
CREATE INDEX organization_members_invited_by_idx ON organization_members (invited_by);

CREATE TRIGGER organizations_updated_at BEFORE UPDATE ON organizations FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER organization_members_updated_at BEFORE UPDATE ON organization_members FOR EACH ROW EXECUTE FUNCTION set_updated_at();
