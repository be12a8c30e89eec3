"""Background jobs: one JobRunner interface; the embedded runner persists jobs in the database."""

from recoverly.jobs.embedded import EmbeddedJobRunner
from recoverly.jobs.runner import JobArgs, JobDefinition, JobInfo, JobRunner

__all__ = ["EmbeddedJobRunner", "JobArgs", "JobDefinition", "JobInfo", "JobRunner"]
