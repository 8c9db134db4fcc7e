"""The waiting helper every process test relies on."""

import pytest
import requests

from tests.support import HTTP_NOT_YET, free_port, http_get_ok, wait_until


def test_ignored_errors_are_not_yet():
    answers = iter([requests.ConnectionError("refused"), requests.ReadTimeout("slow"), None, 7])

    def predicate():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(predicate, timeout=30, ignore=HTTP_NOT_YET) == 7


def test_at_the_deadline_the_failure_names_the_wait_and_the_last_error():
    def refused():
        raise requests.ConnectionError("connection refused")

    with pytest.raises(pytest.fail.Exception) as failure:
        wait_until(refused, timeout=0.2, ignore=HTTP_NOT_YET, message="the web process")

    assert "waiting for the web process" in str(failure.value)
    assert "last error: ConnectionError('connection refused')" in str(failure.value)


def test_other_errors_are_not_swallowed():
    with pytest.raises(KeyError):
        wait_until(lambda: {}["missing"], timeout=30, ignore=HTTP_NOT_YET)


def test_a_closed_port_is_not_yet():
    unused_port = free_port()
    with pytest.raises(pytest.fail.Exception, match="last error: ConnectionError"):
        wait_until(lambda: http_get_ok(f"http://127.0.0.1:{unused_port}/"), timeout=0.5,
                   ignore=HTTP_NOT_YET)
