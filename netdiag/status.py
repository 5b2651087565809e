"""The one status vocabulary shared by probe, scan, check, wait and doctor."""

from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    DNS_FAILED = "dns_failed"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    PROTOCOL_MISMATCH = "protocol_mismatch"  # something else answers the port
    REJECTED = "rejected"  # the server answered with an error (MySQL 1130, auth failure, ...)
    ERROR = "error"
