-- The demo's Flink SQL job, beside the jar job: ids 1, 2, 3, ... at 20 a second into CSV files, exactly
-- once. flink-runbook submits it with its SQL runner (docs/sql-jobs.md): the name, the restore point and
-- the job id are the runbook's, never set here.

-- Checkpoints of its own directory (the inventory's checkpoint_dir.container), retained on failure by the
-- cluster's config; a part file is published only when the checkpoint that covers it completes.
SET 'execution.checkpointing.interval' = '2 s';
SET 'execution.checkpointing.dir' = 'file:///data/sql-checkpoints';

-- The sequence generator keeps the ids still to come in its state: a bounded range (about 80 minutes at
-- 20 a second) keeps each checkpoint under a megabyte.
CREATE TABLE ids (
  id BIGINT
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '20',
  'fields.id.kind' = 'sequence',
  'fields.id.start' = '1',
  'fields.id.end' = '100000'
);

CREATE TABLE committed_ids (
  id BIGINT,
  written_at_ms BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///data/sql-output',
  'format' = 'csv',
  'sink.rolling-policy.rollover-interval' = '1 s'
);

INSERT INTO committed_ids SELECT id, UNIX_TIMESTAMP() * 1000 FROM ids;
