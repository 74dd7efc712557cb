import os

import pytest

# Every Prefect server and client started by the tests stays quiet.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# A CLI run without PREFECT_API_URL starts Prefect's temporary server and gives it 20 s by default; with the
# suite on several workers (make test) on two cores, starting one takes longer: "Timed out while attempting
# to connect to ephemeral Prefect API server".
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

# `make test` runs the suite on pytest-xdist workers (--dist loadgroup --no-loadscopereorder): a worker that
# is free takes the next test, or the next xdist_group, in collection order. The files with the longest
# scenarios (minutes each on two cores) go first, so that none of them starts last while the other workers
# have nothing left; the rest keep pytest's order after them, and the unit tests (a second each) fill the end.
LONGEST_FIRST = (
    "integration/test_scale_out.py",
    "integration/test_demo.py",
    "integration/test_unclean_stop.py",
    "integration/test_served_recovery.py",
    "integration/test_prefect_yaml.py",  # and with it both releases' running-stack groups (integration/conftest.py)
    "integration/test_serve.py",
    "integration/test_fault_watch.py",
    "integration/test_safety.py",
    "integration/test_person_decisions.py",
    "integration/test_high_availability.py",
    "integration/test_flink_properties.py",  # one stack, the whole story: about 3 to 4 min
    "integration/test_runbook_image.py",  # one stack and the image's container, restarted: about 3 to 4 min
    "integration/test_host_state.py",
    "integration/test_operator_view.py",
    "integration/test_docker_hosts.py",
    "integration/test_recover.py",
    "integration/test_sql_jobs.py",
)


@pytest.hookimpl(trylast=True)  # after pytest's own reordering, which keeps each release's tests together
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0].removeprefix("tests/")
        if path in LONGEST_FIRST:
            return LONGEST_FIRST.index(path)
        return len(LONGEST_FIRST) + path.startswith("unit/")

    items.sort(key=rank)  # stable: within a rank, pytest's order
