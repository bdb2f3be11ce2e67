"""Reading spreadsheets people hand over (finance balances) into checked rows, before any service writes."""
