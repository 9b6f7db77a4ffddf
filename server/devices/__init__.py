"""Devices: enrolment with one-time codes, revocation, and authenticating their requests."""
