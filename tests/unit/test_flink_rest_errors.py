"""FlinkRestError says which URL was asked and the informative part of the answer."""

from __future__ import annotations

import json

from flink_runbook.flink.rest import FlinkRestError, summarize_error_body


def test_flink_error_body_is_reduced_to_the_deepest_cause():
    # Shape of a real 1.20.3 answer to POST /jars/:jarid/run whose program failed to start.
    trace = (
        "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.\n"
        "\tat org.apache.flink.runtime.webmonitor.handlers.JarRunHandler.handleRequest(JarRunHandler.java:114)\n"
        "Caused by: java.util.concurrent.CompletionException: java.lang.NoClassDefFoundError: X\n"
        "Caused by: java.lang.NoClassDefFoundError: Could not initialize class X\n"
    )
    summary = summarize_error_body(json.dumps({"errors": [trace]}))
    assert summary.startswith("org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute")
    assert summary.endswith("Caused by: java.lang.NoClassDefFoundError: Could not initialize class X")


def test_non_json_body_is_cut_to_a_preview():
    body = "<html>" + "x" * 1000
    assert summarize_error_body(body) == body[:200]


def test_error_message_names_url_status_and_body():
    error = FlinkRestError(
        "GET answered an error", url="http://127.0.0.1:8081/jobs/x", status=404, body='{"errors":["Job x not found"]}'
    )
    assert "http://127.0.0.1:8081/jobs/x" in str(error)
    assert "HTTP 404" in str(error)
    assert "Job x not found" in str(error)
