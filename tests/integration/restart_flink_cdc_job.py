"""Stand-in for the runbook's ./restart-flink-cdc-job.sh: submit the demo job over REST.

python restart_flink_cdc_job.py REST_URL JAR [RESTORE_PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

from flink_runbook.demo.job import submit_demo_job
from flink_runbook.flink.rest import FlinkRestClient

if __name__ == "__main__":
    rest_url, jar = sys.argv[1], Path(sys.argv[2])
    restore = sys.argv[3] if len(sys.argv) > 3 else ""
    job_id = submit_demo_job(FlinkRestClient(rest_url), jar, savepoint_path=restore or None)
    print(f"submitted job {job_id} from {restore or 'scratch'}")
