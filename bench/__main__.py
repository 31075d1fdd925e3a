"""Every benchmark in one run: ``.venv/bin/python -m bench`` (about 6 minutes)."""

from __future__ import annotations

from bench import dashboard, footprint, http, inprocess, memory, rayjob, rayservice, soak


def main() -> None:
    print("== in-process sync against orjson.loads")
    inprocess.main([10, 100, 1000, 5000])
    print("\n== in-process RayJob sync against the RayCluster sync of its cluster")
    rayjob.main([10, 100, 1000])
    print("\n== RayJob sync latency, the dashboard poller on against off, dashboards hanging 5 s")
    dashboard.main(15.0, 100)
    print("\n== RayService sync against its cluster's; the Serve poller, dashboards hanging")
    rayservice.main(100, 15.0, 100)
    print("\n== HTTP, 5-pod cluster, against a minimal FastAPI endpoint")
    http.main(10.0)
    print("\n== memory, 500 distinct 1,000-pod syncs")
    memory.main(500, 1000)
    print("\n== the hook's memory as the image runs it: idle, after 20 clusters, layer by layer")
    footprint.main(3, 20, 11)
    print("\n== soak")
    soak.main(120.0)


if __name__ == "__main__":
    main()
