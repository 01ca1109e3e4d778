"""Durable storage: SQLite (WAL, synchronous=FULL) through sqlite-utils; knows no hardware."""
