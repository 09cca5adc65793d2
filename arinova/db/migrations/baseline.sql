-- Baseline: the end state of the original server's fifteen Drizzle migrations
-- (journal entries 0000 … 0014), written as one script. It runs only on a fresh
-- database; arinova/db/migrate.py then records the fifteen original bookkeeping
-- rows so either server sees the database as current.
--
-- Column order is the physical order of a database migrated by the original
-- (columns added by later migrations come last). Every name below (types,
-- constraints, indexes) is the name the original's database carries.

-- Enum types (value order matters).
CREATE TYPE message_role AS ENUM ('user', 'agent');
CREATE TYPE message_status AS ENUM ('pending', 'streaming', 'completed', 'cancelled', 'error');
CREATE TYPE conversation_type AS ENUM ('direct', 'group');
CREATE TYPE community_role AS ENUM ('owner', 'admin', 'member');
CREATE TYPE app_status AS ENUM (
    'draft', 'submitted', 'scanning', 'in_review', 'published', 'rejected', 'suspended'
);
CREATE TYPE app_version_status AS ENUM (
    'submitted', 'scanning', 'in_review', 'published', 'rejected'
);
CREATE TYPE coin_transaction_type AS ENUM ('topup', 'purchase', 'refund', 'payout', 'earning');
CREATE TYPE purchase_status AS ENUM ('completed', 'refunded');

-- Accounts and sessions (the Better Auth tables).
CREATE TABLE "user" (
    id              text      NOT NULL,
    name            text      NOT NULL,
    email           text      NOT NULL,
    email_verified  boolean   NOT NULL DEFAULT false,
    image           text,
    created_at      timestamp NOT NULL DEFAULT now(),
    updated_at      timestamp NOT NULL DEFAULT now(),
    CONSTRAINT user_pkey PRIMARY KEY (id),
    CONSTRAINT user_email_unique UNIQUE (email)
);

CREATE TABLE session (
    id          text      NOT NULL,
    user_id     text      NOT NULL,
    token       text      NOT NULL,
    expires_at  timestamp NOT NULL,
    ip_address  text,
    user_agent  text,
    created_at  timestamp NOT NULL DEFAULT now(),
    updated_at  timestamp NOT NULL DEFAULT now(),
    CONSTRAINT session_pkey PRIMARY KEY (id),
    CONSTRAINT session_token_unique UNIQUE (token),
    CONSTRAINT session_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id)
);

CREATE TABLE account (
    id                        text      NOT NULL,
    user_id                   text      NOT NULL,
    account_id                text      NOT NULL,
    provider_id               text      NOT NULL,
    access_token              text,
    refresh_token             text,
    access_token_expires_at   timestamp,
    refresh_token_expires_at  timestamp,
    scope                     text,
    id_token                  text,
    password                  text,
    created_at                timestamp NOT NULL DEFAULT now(),
    updated_at                timestamp NOT NULL DEFAULT now(),
    CONSTRAINT account_pkey PRIMARY KEY (id),
    CONSTRAINT account_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id)
);

CREATE TABLE verification (
    id          text      NOT NULL,
    identifier  text      NOT NULL,
    value       text      NOT NULL,
    expires_at  timestamp NOT NULL,
    created_at  timestamp NOT NULL DEFAULT now(),
    updated_at  timestamp NOT NULL DEFAULT now(),
    CONSTRAINT verification_pkey PRIMARY KEY (id)
);

-- Chat.
CREATE TABLE agents (
    id                     uuid         NOT NULL DEFAULT gen_random_uuid(),
    name                   varchar(100) NOT NULL,
    description            text,
    avatar_url             text,
    a2a_endpoint           text,
    owner_id               text         NOT NULL,
    created_at             timestamp    NOT NULL DEFAULT now(),
    updated_at             timestamp    NOT NULL DEFAULT now(),
    is_public              boolean      NOT NULL DEFAULT false,
    category               varchar(50),
    usage_count            integer      NOT NULL DEFAULT 0,
    system_prompt          text,
    welcome_message        text,
    quick_replies          jsonb,
    notifications_enabled  boolean      NOT NULL DEFAULT true,
    secret_token           varchar(64),
    CONSTRAINT agents_pkey PRIMARY KEY (id),
    CONSTRAINT agents_secret_token_unique UNIQUE (secret_token),
    CONSTRAINT agents_owner_id_user_id_fk FOREIGN KEY (owner_id) REFERENCES "user" (id)
);

CREATE TABLE conversations (
    id          uuid              NOT NULL DEFAULT gen_random_uuid(),
    title       varchar(200),
    user_id     text              NOT NULL,
    agent_id    uuid,
    pinned_at   timestamp,
    created_at  timestamp         NOT NULL DEFAULT now(),
    updated_at  timestamp         NOT NULL DEFAULT now(),
    type        conversation_type NOT NULL DEFAULT 'direct',
    CONSTRAINT conversations_pkey PRIMARY KEY (id),
    CONSTRAINT conversations_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id),
    CONSTRAINT conversations_agent_id_agents_id_fk FOREIGN KEY (agent_id) REFERENCES agents (id)
);
CREATE INDEX conversations_user_id_idx ON conversations (user_id);

CREATE TABLE conversation_members (
    id               uuid      NOT NULL DEFAULT gen_random_uuid(),
    conversation_id  uuid      NOT NULL,
    agent_id         uuid      NOT NULL,
    added_at         timestamp NOT NULL DEFAULT now(),
    CONSTRAINT conversation_members_pkey PRIMARY KEY (id),
    CONSTRAINT conversation_members_conversation_id_conversations_id_fk
        FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE,
    CONSTRAINT conversation_members_agent_id_agents_id_fk
        FOREIGN KEY (agent_id) REFERENCES agents (id)
);

CREATE TABLE messages (
    id               uuid           NOT NULL DEFAULT gen_random_uuid(),
    conversation_id  uuid           NOT NULL,
    role             message_role   NOT NULL,
    content          text           NOT NULL DEFAULT '',
    status           message_status NOT NULL DEFAULT 'pending',
    created_at       timestamp      NOT NULL DEFAULT now(),
    updated_at       timestamp      NOT NULL DEFAULT now(),
    seq              integer        NOT NULL,
    CONSTRAINT messages_pkey PRIMARY KEY (id),
    CONSTRAINT messages_conversation_id_conversations_id_fk
        FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE
);
CREATE INDEX messages_conversation_id_idx ON messages (conversation_id);
-- Not unique: the original lost the uniqueness of (conversation_id, seq).
CREATE INDEX messages_conversation_seq_idx ON messages (conversation_id, seq);

CREATE TABLE conversation_reads (
    id               uuid      NOT NULL DEFAULT gen_random_uuid(),
    user_id          text      NOT NULL,
    conversation_id  uuid      NOT NULL,
    last_read_seq    integer   NOT NULL DEFAULT 0,
    updated_at       timestamp NOT NULL DEFAULT now(),
    muted            boolean   NOT NULL DEFAULT false,
    CONSTRAINT conversation_reads_pkey PRIMARY KEY (id),
    CONSTRAINT conversation_reads_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id),
    CONSTRAINT conversation_reads_conversation_id_conversations_id_fk
        FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE
);
-- Two identical unique indexes, as in every database the original migrated.
CREATE UNIQUE INDEX conversation_reads_user_conversation_idx
    ON conversation_reads (user_id, conversation_id);
CREATE UNIQUE INDEX conversation_reads_user_conv_idx
    ON conversation_reads (user_id, conversation_id);

CREATE TABLE attachments (
    id            uuid         NOT NULL DEFAULT gen_random_uuid(),
    message_id    uuid         NOT NULL,
    file_name     varchar(255) NOT NULL,
    file_type     varchar(100) NOT NULL,
    file_size     integer      NOT NULL,
    storage_path  text         NOT NULL,
    created_at    timestamp    NOT NULL DEFAULT now(),
    CONSTRAINT attachments_pkey PRIMARY KEY (id),
    CONSTRAINT attachments_message_id_messages_id_fk
        FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE
);

CREATE TABLE message_reactions (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    message_id  uuid        NOT NULL,
    user_id     text        NOT NULL,
    emoji       varchar(32) NOT NULL,
    created_at  timestamp   NOT NULL DEFAULT now(),
    CONSTRAINT message_reactions_pkey PRIMARY KEY (id),
    CONSTRAINT message_reactions_message_id_messages_id_fk
        FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE,
    CONSTRAINT message_reactions_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id)
);
CREATE UNIQUE INDEX message_reactions_user_msg_emoji_idx
    ON message_reactions (message_id, user_id, emoji);
CREATE INDEX message_reactions_message_id_idx ON message_reactions (message_id);

CREATE TABLE push_subscriptions (
    id           uuid      NOT NULL DEFAULT gen_random_uuid(),
    user_id      text      NOT NULL,
    endpoint     text      NOT NULL,
    p256dh       text      NOT NULL,
    auth         text      NOT NULL,
    device_info  text,
    created_at   timestamp NOT NULL DEFAULT now(),
    CONSTRAINT push_subscriptions_pkey PRIMARY KEY (id),
    CONSTRAINT push_subscriptions_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id)
);

CREATE TABLE notification_preferences (
    id                         uuid       NOT NULL DEFAULT gen_random_uuid(),
    user_id                    text       NOT NULL,
    global_enabled             boolean    NOT NULL DEFAULT true,
    message_enabled            boolean    NOT NULL DEFAULT true,
    playground_invite_enabled  boolean    NOT NULL DEFAULT true,
    playground_turn_enabled    boolean    NOT NULL DEFAULT true,
    playground_result_enabled  boolean    NOT NULL DEFAULT true,
    quiet_hours_start          varchar(5),
    quiet_hours_end            varchar(5),
    CONSTRAINT notification_preferences_pkey PRIMARY KEY (id),
    CONSTRAINT notification_preferences_user_id_unique UNIQUE (user_id),
    CONSTRAINT notification_preferences_user_id_user_id_fk
        FOREIGN KEY (user_id) REFERENCES "user" (id)
);

-- Communities (kept, unused by the mounted API).
CREATE TABLE communities (
    id           uuid         NOT NULL DEFAULT gen_random_uuid(),
    name         varchar(100) NOT NULL,
    description  text,
    avatar_url   text,
    owner_id     text         NOT NULL,
    is_public    boolean      NOT NULL DEFAULT true,
    created_at   timestamp    NOT NULL DEFAULT now(),
    updated_at   timestamp    NOT NULL DEFAULT now(),
    CONSTRAINT communities_pkey PRIMARY KEY (id),
    CONSTRAINT communities_owner_id_user_id_fk FOREIGN KEY (owner_id) REFERENCES "user" (id)
);

CREATE TABLE channels (
    id            uuid         NOT NULL DEFAULT gen_random_uuid(),
    community_id  uuid         NOT NULL,
    name          varchar(100) NOT NULL,
    description   text,
    agent_id      uuid,
    position      integer      NOT NULL DEFAULT 0,
    created_at    timestamp    NOT NULL DEFAULT now(),
    updated_at    timestamp    NOT NULL DEFAULT now(),
    CONSTRAINT channels_pkey PRIMARY KEY (id),
    CONSTRAINT channels_community_id_communities_id_fk
        FOREIGN KEY (community_id) REFERENCES communities (id) ON DELETE CASCADE,
    CONSTRAINT channels_agent_id_agents_id_fk FOREIGN KEY (agent_id) REFERENCES agents (id)
);

CREATE TABLE community_members (
    id            uuid           NOT NULL DEFAULT gen_random_uuid(),
    community_id  uuid           NOT NULL,
    user_id       text           NOT NULL,
    role          community_role NOT NULL DEFAULT 'member',
    joined_at     timestamp      NOT NULL DEFAULT now(),
    CONSTRAINT community_members_pkey PRIMARY KEY (id),
    CONSTRAINT community_members_community_id_communities_id_fk
        FOREIGN KEY (community_id) REFERENCES communities (id) ON DELETE CASCADE,
    CONSTRAINT community_members_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id)
);

CREATE TABLE channel_messages (
    id          uuid           NOT NULL DEFAULT gen_random_uuid(),
    channel_id  uuid           NOT NULL,
    user_id     text,
    role        message_role   NOT NULL,
    content     text           NOT NULL DEFAULT '',
    status      message_status NOT NULL DEFAULT 'pending',
    created_at  timestamp      NOT NULL DEFAULT now(),
    updated_at  timestamp      NOT NULL DEFAULT now(),
    CONSTRAINT channel_messages_pkey PRIMARY KEY (id),
    CONSTRAINT channel_messages_channel_id_channels_id_fk
        FOREIGN KEY (channel_id) REFERENCES channels (id) ON DELETE CASCADE,
    CONSTRAINT channel_messages_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id)
);

-- Marketplace and coins (kept, unused by the mounted API).
CREATE TABLE developer_accounts (
    id                 uuid         NOT NULL DEFAULT gen_random_uuid(),
    user_id            text         NOT NULL,
    display_name       varchar(100) NOT NULL,
    contact_email      varchar(255) NOT NULL,
    payout_info        text,
    terms_accepted_at  timestamp    NOT NULL,
    created_at         timestamp    NOT NULL DEFAULT now(),
    CONSTRAINT developer_accounts_pkey PRIMARY KEY (id),
    CONSTRAINT developer_accounts_user_id_unique UNIQUE (user_id),
    CONSTRAINT developer_accounts_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id)
);

CREATE TABLE apps (
    id                  uuid         NOT NULL DEFAULT gen_random_uuid(),
    developer_id        uuid         NOT NULL,
    app_id              varchar(100) NOT NULL,
    name                varchar(100) NOT NULL,
    description         text         NOT NULL,
    category            varchar(50)  NOT NULL,
    icon                text         NOT NULL,
    status              app_status   NOT NULL DEFAULT 'draft',
    current_version_id  uuid,
    created_at          timestamp    NOT NULL DEFAULT now(),
    updated_at          timestamp    NOT NULL DEFAULT now(),
    CONSTRAINT apps_pkey PRIMARY KEY (id),
    CONSTRAINT apps_app_id_unique UNIQUE (app_id),
    CONSTRAINT apps_developer_id_developer_accounts_id_fk
        FOREIGN KEY (developer_id) REFERENCES developer_accounts (id)
);

CREATE TABLE app_versions (
    id             uuid               NOT NULL DEFAULT gen_random_uuid(),
    app_id         uuid               NOT NULL,
    version        varchar(50)        NOT NULL,
    manifest_json  jsonb              NOT NULL,
    package_path   text               NOT NULL,
    status         app_version_status NOT NULL DEFAULT 'submitted',
    review_notes   text,
    created_at     timestamp          NOT NULL DEFAULT now(),
    CONSTRAINT app_versions_pkey PRIMARY KEY (id),
    CONSTRAINT app_versions_app_id_apps_id_fk
        FOREIGN KEY (app_id) REFERENCES apps (id) ON DELETE CASCADE
);

CREATE TABLE coin_balances (
    user_id     text      NOT NULL,
    balance     integer   NOT NULL DEFAULT 0,
    updated_at  timestamp NOT NULL DEFAULT now(),
    CONSTRAINT coin_balances_pkey PRIMARY KEY (user_id),
    CONSTRAINT coin_balances_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id)
);

CREATE TABLE coin_transactions (
    id                  uuid                  NOT NULL DEFAULT gen_random_uuid(),
    user_id             text                  NOT NULL,
    type                coin_transaction_type NOT NULL,
    amount              integer               NOT NULL,
    related_app_id      uuid,
    related_product_id  varchar(100),
    receipt_id          varchar(255),
    description         text,
    created_at          timestamp             NOT NULL DEFAULT now(),
    CONSTRAINT coin_transactions_pkey PRIMARY KEY (id),
    CONSTRAINT coin_transactions_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id),
    CONSTRAINT coin_transactions_related_app_id_apps_id_fk
        FOREIGN KEY (related_app_id) REFERENCES apps (id)
);

CREATE TABLE app_purchases (
    id              uuid            NOT NULL DEFAULT gen_random_uuid(),
    user_id         text            NOT NULL,
    app_version_id  uuid            NOT NULL,
    product_id      varchar(100)    NOT NULL,
    amount          integer         NOT NULL,
    status          purchase_status NOT NULL DEFAULT 'completed',
    created_at      timestamp       NOT NULL DEFAULT now(),
    CONSTRAINT app_purchases_pkey PRIMARY KEY (id),
    CONSTRAINT app_purchases_user_id_user_id_fk FOREIGN KEY (user_id) REFERENCES "user" (id),
    CONSTRAINT app_purchases_app_version_id_app_versions_id_fk
        FOREIGN KEY (app_version_id) REFERENCES app_versions (id)
);
