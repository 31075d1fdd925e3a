"""The RayJob core: pure decisions for one RayJob, its RayCluster, submitter Job and Service."""
