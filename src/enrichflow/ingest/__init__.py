"""Reading uploaded lead lists: a streaming CSV reader and the header alias table."""
