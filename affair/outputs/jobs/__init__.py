"""Job-indexed views: per-job metrics, the jobs pages, the job commands' bodies."""
