"""A short run of the soak harness (soak.py; `make soak` runs the long one): 60 s of the
client tests' mix with stalls and SIGKILL restarts; the broker never dies by itself and
every record acknowledged with acks=all is read back."""
from soak import Soak


def test_a_minute_of_mixed_load_with_stalls_and_kills_loses_nothing_and_never_crashes(tmp_path):
    report = Soak(tmp_path / "soak", seconds=60, seed=16, stall_every=6, kill_every=20).run()
    print(report)
    assert report["failures"] == [], "\n\n".join(report["failures"])
    assert report["kills"] >= 2 and report["stalls"] >= 4, report
    assert report["acked_ledger_records"] > 0, report
    # Every part of the mix ran to completion at least once: the harness tested something.
    assert set(report["iterations"]) == {"ledger_producer", "ledger_producer_2", "churn", "group_consumer",
                                         "group_consumer_2", "raw_connection", "long_poll_fanout",
                                         "load_generator"}, report
