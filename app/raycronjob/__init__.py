"""The RayCronJob core: RayJobs created on a cron schedule (pure; the shell passes the clock)."""
