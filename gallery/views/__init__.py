"""Server-rendered pages, one module per audience.

`attendee` (joining, consent, selfie, my photos, all photos), `account` (sign-up,
face data, account deletion), `studio` (the photographer's events) and `media`
(photo files). They reach data through `gallery.access` and processing through
`processing.services`, never through the API.
"""
