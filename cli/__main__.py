"""`python -m flink_runbook.cli ...` = `flink-runbook ...`."""

import sys

from flink_runbook.cli.main import main

sys.exit(main())
