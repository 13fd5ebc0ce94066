"""Table definitions that several engine tests share."""

# a patient's notes: a composite key with a timestamptz, under a deferred foreign key (checked at COMMIT)
NOTES = """
create table notes (
    patient_id int not null,
    at         timestamptz not null,
    body       text,
    primary key (patient_id, at),
    constraint notes_patient foreign key (patient_id) references patients (id) deferrable initially deferred
);
"""
