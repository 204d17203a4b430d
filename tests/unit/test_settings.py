"""Settings whose defaults depend on the machine."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from restitution import settings
from restitution.settings import Settings, default_worker_threads


@pytest.mark.parametrize(
    ("cpus", "threads"), [(1, 1), (2, 1), (3, 1), (4, 2), (6, 3), (8, 4), (64, 4)]
)
def test_a_worker_fires_deadlines_on_one_thread_per_two_cores_at_most_four(
    cpus: int, threads: int
) -> None:
    assert default_worker_threads(cpus) == threads


def test_the_machine_sets_the_default_and_the_environment_overrides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RESTITUTION_WORKER_THREADS", raising=False)
    # The CPUs this process may run on (a container's cpuset), not all the host's.
    monkeypatch.setattr(settings.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(settings.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert Settings().worker_threads == 1
    monkeypatch.setattr(settings.os, "sched_getaffinity", lambda pid: set(range(8)))
    assert Settings().worker_threads == 4
    monkeypatch.delattr(settings.os, "sched_getaffinity")  # not on Linux: all the CPUs
    assert Settings().worker_threads == 4
    monkeypatch.setattr(settings.os, "cpu_count", lambda: None)  # unknown: one
    assert Settings().worker_threads == 1
    monkeypatch.setenv("RESTITUTION_WORKER_THREADS", "3")
    assert Settings().worker_threads == 3


def test_unused_uploads_are_kept_a_day_unless_set_and_at_least_an_hour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RESTITUTION_UNUSED_UPLOAD_HOURS", raising=False)
    assert Settings().unused_upload_hours == 24
    monkeypatch.setenv("RESTITUTION_UNUSED_UPLOAD_HOURS", "72")
    assert Settings().unused_upload_hours == 72
    # 0 would delete the photos of a case while the buyer is still filling in its form.
    monkeypatch.setenv("RESTITUTION_UNUSED_UPLOAD_HOURS", "0")
    with pytest.raises(ValidationError):
        Settings()
