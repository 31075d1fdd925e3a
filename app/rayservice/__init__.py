"""The RayService core: Ray Serve applications with zero-downtime upgrades (pure)."""
