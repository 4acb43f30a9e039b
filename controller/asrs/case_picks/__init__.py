"""B2B case picks served from the AS/RS: totes out of the rack, to a station and back."""
