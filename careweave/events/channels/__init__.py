"""Delivery channels: the :class:`~careweave.events.channels.base.Channel` protocol and its
rest-hook and NATS JetStream implementations (imported from their modules, so that a process
without ``nats-py`` can still use the rest), and the websocket channel's sans-IO protocol."""

from careweave.events.channels.base import Channel, Delivery, DeliveryResult, classify_status, delivery_for

__all__ = ["Channel", "Delivery", "DeliveryResult", "classify_status", "delivery_for"]
