"""Biometrics shared by provisioning (enrolment) and the station (1:1 match)."""
