-- Views over the history datasets: inferences, billing, feedback.
-- Each reads exactly the files its _manifest.json lists (what the server has published), so a
-- compaction in progress never shows a row twice. Run it from the storage root, e.g.
--   cd var/history && duckdb -init ../../app/history/views.sql
-- or let `python -m app.history sql "..."` do that (it also adds rows not yet flushed).
SET VARIABLE inferences_files = (SELECT files FROM read_json('inferences/_manifest.json'));
SET VARIABLE billing_files = (SELECT files FROM read_json('billing/_manifest.json'));
SET VARIABLE feedback_files = (SELECT files FROM read_json('feedback/_manifest.json'));
CREATE OR REPLACE VIEW inferences AS
    SELECT * FROM read_parquet(getvariable('inferences_files'), hive_partitioning = true);
CREATE OR REPLACE VIEW billing AS
    SELECT * FROM read_parquet(getvariable('billing_files'), hive_partitioning = true);
CREATE OR REPLACE VIEW feedback AS
    SELECT * FROM read_parquet(getvariable('feedback_files'), hive_partitioning = true);
