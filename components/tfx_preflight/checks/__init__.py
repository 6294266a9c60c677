"""The four checks, one subpackage each, usable and testable without the others."""
