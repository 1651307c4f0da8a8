-- The W3C traceparent of the write that made each row's last change, when traces are
-- exported (docs/observability.md, "Traces"): readers that act on a change continue its trace.
ALTER TABLE resources ADD COLUMN trace_context TEXT;
