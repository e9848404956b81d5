"""The qcluster wrapper: the queue runs at a lower CPU priority than the web server."""

import os
from pathlib import Path

import pytest
from django_q.management.commands.qcluster import Command as QClusterCommand

from processing.management.commands import qcluster
from tests.cluster import wait_for
from testsupport.processes import descendants


def test_niceness_is_raised_before_django_q2_starts(monkeypatch, settings, tmp_path):
    # Only what happens before django-q2 forks reaches the workers.
    calls = []
    monkeypatch.setattr(qcluster.os, "nice", lambda increment: calls.append(("nice", increment)) or 17)
    # As the leader of its own session, it renices the session's autogroup too.
    monkeypatch.setattr(qcluster.os, "getsid", lambda pid: os.getpid())
    autogroup = tmp_path / "autogroup"
    autogroup.write_text("/autogroup-1 nice 0\n")
    monkeypatch.setattr(qcluster, "AUTOGROUP", autogroup)
    monkeypatch.setattr(qcluster, "use_persistent_connections", lambda: calls.append(("connections",)))
    monkeypatch.setattr(qcluster, "initialize_photo_queue", lambda: calls.append(("recovery",)))
    monkeypatch.setattr(QClusterCommand, "handle", lambda self, *args, **options: calls.append(("django-q2",)))
    settings.QCLUSTER_NICE = 7

    qcluster.Command().handle()

    assert calls == [("nice", 7), ("connections",), ("recovery",), ("django-q2",)]
    assert autogroup.read_text() == "17"


@pytest.mark.slow
def test_cluster_processes_run_at_the_configured_niceness(start_cluster):
    cluster = start_cluster(PHOTO_QUEUE_WORKERS="2", QCLUSTER_NICE="5")
    wait_for(lambda: " running." in cluster.log, 60, "the cluster to start its workers")
    expected = min(os.nice(0) + 5, 19)
    pids = [cluster.process.pid, *descendants(cluster.process.pid)]

    # The main process, the sentinel, the monitor, the pusher and 2 workers.
    assert len(pids) >= 5, cluster.log
    assert {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == dict.fromkeys(pids, expected)
    assert f"run at niceness {expected} (QCLUSTER_NICE=5)" in cluster.log
    # The fixture starts the cluster in a session of its own, as systemd would.
    autogroup = Path(f"/proc/{cluster.process.pid}/autogroup")
    if autogroup.exists():
        assert autogroup.read_text().split()[-2:] == ["nice", str(expected)]
