"""Terminal and acquirer-host simulators that speak posgw's wire formats."""
