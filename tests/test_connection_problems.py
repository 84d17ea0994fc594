"""memory_core.connection.describe_connection_error: what went wrong reaching Redis, in words.

The exceptions are redis-py's own, built as its parser builds them from the server's
reply (status code first); the dashboard tests (test_dashboard.py) check the same
classification end to end against a real redis-server with an ACL user.
"""

from __future__ import annotations

import socket

import pytest
import redis
import redis.exceptions

from memory_core.connection import PROBLEM_KINDS, ConnectionProblem, describe_connection_error
from memory_core.errors import StoreUnavailable

URL = "redis://ops:S3cret-pw@cache.internal:6380/4"
HELLO = ("HELLO must be called with the client already authenticated, otherwise the HELLO "
         "AUTH <user> <pass> option can be used to authenticate the client and select the "
         "RESP protocol version at the same time")


def describe(exc: BaseException, url: str = URL) -> ConnectionProblem:
    problem = describe_connection_error(exc, url)
    assert problem.kind in PROBLEM_KINDS
    text = " ".join([problem.headline, problem.detail, *problem.steps, problem.where])
    assert "S3cret-pw" not in text
    assert problem.steps, "every problem says what to do"
    return problem


@pytest.mark.parametrize("exc, kind, headline", [
    (redis.AuthenticationError("invalid username-password pair or user is disabled.",
                               status_code="WRONGPASS"),
     "credentials_refused", 'Redis refused the credentials of user "ops"'),
    (redis.AuthenticationError(HELLO, status_code="NOAUTH"),
     "password_required", "Redis requires a password, and none was given"),
    (redis.AuthenticationError("Authentication required.", status_code="NOAUTH"),
     "password_required", "Redis requires a password, and none was given"),
    (redis.AuthenticationError("Client sent AUTH, but no password is set"),
     "password_not_set", "Redis has no password, and the URL gives one"),
    (redis.exceptions.AuthenticationWrongNumberOfArgsError(
        "wrong number of arguments for 'auth' command"),
     "credentials_refused", 'Redis refused the credentials of user "ops"'),
    (redis.ResponseError("DB index is out of range"), "no_such_database",
     "Redis has no database 4"),
    (redis.ResponseError("SELECT is not allowed in cluster mode"), "no_such_database",
     "Redis has no database 4"),
    (redis.exceptions.NoPermissionError(
        "this user has no permissions to run the 'dbsize' command", status_code="NOPERM"),
     "permission", 'Redis accepted user "ops", but refuses it a command the dashboard needs'),
    (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
     "loading", "Redis is loading its data"),
    (redis.TimeoutError("Timeout reading from socket"), "timeout",
     "Redis did not answer in time"),
    (redis.ConnectionError("Error 111 connecting to cache.internal:6380. Connection refused."),
     "unreachable", "Cannot reach Redis"),
    (ConnectionRefusedError(111, "Connection refused"), "unreachable", "Cannot reach Redis"),
    (socket.gaierror(-2, "Name or service not known"), "unreachable", "Cannot reach Redis"),
    (redis.ResponseError("MISCONF something odd"), "server_error",
     "Redis answered with an error"),
])
def test_each_failure_has_its_kind_and_words(exc: BaseException, kind: str,
                                             headline: str) -> None:
    problem = describe(exc)
    assert (problem.kind, problem.headline) == (kind, headline)
    assert problem.where == "redis://ops:***@cache.internal:6380/4"
    assert problem.user == "ops"


def test_redis_answering_no_is_never_called_unreachable() -> None:
    for exc in (redis.AuthenticationError("invalid username-password pair",
                                          status_code="WRONGPASS"),
                redis.AuthenticationError(HELLO, status_code="NOAUTH"),
                redis.ResponseError("DB index is out of range")):
        problem = describe(exc)
        assert "Redis answered" in problem.detail
        assert "Cannot reach" not in problem.headline
        assert not any("server runs" in step for step in problem.steps)


def test_the_missing_password_case_does_not_repeat_redis_pys_hello_text() -> None:
    problem = describe(redis.AuthenticationError(HELLO, status_code="NOAUTH"),
                       "redis://127.0.0.1:6379/0")
    assert "HELLO" not in problem.detail + " ".join(problem.steps)
    assert 'the "default" user' in problem.detail
    assert problem.user is None


def test_a_store_unavailable_is_classified_by_the_error_behind_it() -> None:
    cause = redis.AuthenticationError("invalid username-password pair",
                                      status_code="WRONGPASS")
    try:
        try:
            raise cause
        except redis.ConnectionError as exc:
            raise StoreUnavailable.from_fault(exc) from exc
    except StoreUnavailable as wrapped:
        assert describe(wrapped).kind == "credentials_refused"


def test_the_password_is_scrubbed_even_when_a_server_echoes_it() -> None:
    for url in (URL, "redis://cache.internal:6380/4?username=ops&password=S3cret-pw"):
        problem = describe(redis.ResponseError("ERR weird reply mentioning S3cret-pw"), url)
        assert "***" in problem.detail
    problem = describe(redis.ResponseError("echo S3cret%40pw"), "redis://ops:S3cret%40pw@h/0")
    assert "S3cret" not in problem.detail


def test_the_user_of_a_query_option_is_named() -> None:
    problem = describe(redis.AuthenticationError("invalid username-password pair",
                                                 status_code="WRONGPASS"),
                       "redis://h:6379/0?username=reporting&password=S3cret-pw")
    assert problem.headline == 'Redis refused the credentials of user "reporting"'
    assert "ACL GETUSER reporting" in " ".join(problem.steps)


def test_without_a_url_or_with_a_bad_one_it_still_answers() -> None:
    assert describe_connection_error(redis.ConnectionError("x"), None).where == (
        "the configured Redis")
    problem = describe_connection_error(redis.ConnectionError("x"), "redis://u:pw@h:bad/0")
    assert problem.kind == "unreachable" and "pw" not in problem.where
