"""Key catalogues recorded from the Flink 1.20.3 and 2.2.0 jars (scripts/flink_options/record.py)."""

from __future__ import annotations

import pytest

from flink_runbook.flink.options import UnknownFlinkRelease, key_status, option_catalogue


@pytest.mark.parametrize("release", ["1.20", "2.2"])
def test_the_checkpoint_directory_key_was_renamed_and_the_old_one_is_still_read(release):
    old = key_status("state.checkpoints.dir", release)
    assert (old.status, old.use) == ("renamed", "execution.checkpointing.dir")
    assert key_status("execution.checkpointing.dir", release).status == "current"
    assert (key_status("restart-strategy", release).status, key_status("restart-strategy", release).use) == (
        "renamed",
        "restart-strategy.type",
    )


def test_keys_that_flink_2_no_longer_reads_are_gone_there_and_deprecated_in_1_20():
    for key in ("state.backend.async", "jobmanager.heap.size", "execution.checkpointing.force"):
        assert key_status(key, "1.20.3").status == "deprecated", key
        gone = key_status(key, "2.2.0")
        assert (gone.status, gone.known_in) == ("gone", "1.20.3"), key


def test_defaults_are_flinks_own():
    for release in ("1.20.3", "2.2.0"):
        options = option_catalogue(release).options
        assert options["heartbeat.timeout"].default == "PT50S"
        assert options["heartbeat.interval"].default == "PT10S"
        assert options["restart-strategy.fixed-delay.attempts"].default == "1"
        assert options["execution.checkpointing.externalized-checkpoint-retention"].default == (
            "NO_EXTERNALIZED_CHECKPOINTS"
        )


def test_unknown_keys_and_releases():
    assert key_status("s3.access-key", "2.2").status == "unknown"  # a plugin's key: not flink-dist's to judge
    assert option_catalogue("1.20.1").flink_version == "1.20.3"  # same minor release
    with pytest.raises(UnknownFlinkRelease, match="no configuration catalogue for Flink 1.17.2"):
        option_catalogue("1.17.2")
