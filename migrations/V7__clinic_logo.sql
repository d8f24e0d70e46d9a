-- The clinic's logo, printed in the header of every paper. One row, id 'logo'. The image is
-- kept as ClinicDesk re-encoded it: a PNG of at most 600 x 200 pixels, flattened on white, so
-- nothing of the uploaded file (its metadata, its other frames) is kept or printed.
CREATE TABLE clinic_logo (
    id          TEXT PRIMARY KEY NOT NULL CHECK (id = 'logo'),
    png         BLOB NOT NULL,
    width       INTEGER NOT NULL CHECK (width BETWEEN 1 AND 600),
    height      INTEGER NOT NULL CHECK (height BETWEEN 1 AND 200),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;
