"""`python -m flink_runbook.demo`: README's first command (see flink_runbook.demo.main)."""

import sys

from flink_runbook.demo.main import main

sys.exit(main())
