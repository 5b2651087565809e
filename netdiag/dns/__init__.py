"""DNS: resolver configuration, lookups the way an app does them, dig-format rendering."""
