"""Delivery receipts: what became of each call, as the provider reports it by webhook."""
