"""Prometheus metrics, in a registry of their own so that tests and apps do not collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "stifinder_http_requests_total",
            "HTTP requests answered, by route template and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "stifinder_http_request_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            registry=self.registry,
        )
        self.worker_sweeps = Counter(
            "stifinder_worker_sweeps_total",
            "Sweeps of due scheduled items run by this process.",
            registry=self.registry,
        )
        self.scheduled_items = Counter(
            "stifinder_scheduled_items_total",
            "Scheduled items finished by this process, by kind and outcome.",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.worker_last_sweep = Gauge(
            "stifinder_worker_last_sweep_timestamp_seconds",
            "When this process last finished a sweep (Unix time).",
            registry=self.registry,
        )
        self.outbox_sent = Counter(
            "stifinder_outbox_sent_total",
            "Messages handed to a provider, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.outbox_retried = Counter(
            "stifinder_outbox_retries_total",
            "Sends that will be tried again (429, 5xx, timeouts before sending), by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.outbox_failed = Counter(
            "stifinder_outbox_failed_total",
            "Messages given up on, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.outbox_unknown = Counter(
            "stifinder_outbox_unknown_outcomes_total",
            "Sends whose outcome was unknown (the connection dropped after the request went out).",
            ["channel"],
            registry=self.registry,
        )
        self.outbox_resent_after_unknown = Counter(
            "stifinder_outbox_resent_after_unknown_total",
            "Unknown outcomes the provider could not confirm, sent again (possible duplicates).",
            ["channel"],
            registry=self.registry,
        )
        self.imported_rows = Counter(
            "stifinder_imported_young_people_total",
            "Young people created or updated by imports, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
