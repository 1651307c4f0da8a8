-- Atoll's resource table and its change feed.
--
-- Applied once per database by sqlx's migrator (under its advisory lock, so replicas starting
-- together do not race). Never edit an applied migration: add a new file instead.

-- Store-wide revisions: every committed write takes the next value, across all resources and
-- all replicas, so a revision orders every change ever made.
CREATE SEQUENCE resource_versions AS BIGINT;

CREATE TABLE resources (
    -- "C" collation: byte order, the same order the memory store and Rust strings sort in.
    type              TEXT COLLATE "C" NOT NULL,
    -- '' for global-scoped types, so the primary key needs no NULLs.
    mesh              TEXT COLLATE "C" NOT NULL,
    name              TEXT COLLATE "C" NOT NULL,
    -- The resource's document without its metadata (type, name, mesh, labels, times).
    spec              JSONB NOT NULL,
    labels            JSONB NOT NULL DEFAULT '{}'::jsonb,
    version           BIGINT NOT NULL,
    creation_time     TIMESTAMPTZ NOT NULL,
    modification_time TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (type, mesh, name)
);

-- Label selectors are containment queries (labels @> '{"k": "v"}').
CREATE INDEX resources_labels ON resources USING GIN (labels jsonb_path_ops);

-- Tells listeners what changed. Small payload (NOTIFY caps it at 8000 bytes): listeners read
-- the resource itself when they need it. A delete takes its own revision here, so that the
-- event carries a revision newer than every earlier change.
CREATE FUNCTION notify_resource_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('atoll_resources', json_build_object(
            'op', 'delete', 'type', OLD.type, 'mesh', OLD.mesh, 'name', OLD.name,
            'version', nextval('resource_versions'))::text);
        RETURN OLD;
    END IF;
    PERFORM pg_notify('atoll_resources', json_build_object(
        'op', 'put', 'type', NEW.type, 'mesh', NEW.mesh, 'name', NEW.name,
        'version', NEW.version)::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER resources_notify
    AFTER INSERT OR UPDATE OR DELETE ON resources
    FOR EACH ROW EXECUTE FUNCTION notify_resource_change();
