from __future__ import annotations

from typing import Any

from django import forms

from imports.csvfile import DELIMITER_LABELS, ENCODINGS
from imports.fields import FIELDS
from imports.models import FanImport

ENCODING_CHOICES = [("", "Detect"), *ENCODINGS.items()]
DELIMITER_CHOICES = [("", "Detect"), *DELIMITER_LABELS.items()]
FIELD_CHOICES = [("", "— ignore —"), *((f.name, f.label) for f in FIELDS.values())]


class UploadForm(forms.Form):
    file = forms.FileField(label="CSV file", allow_empty_file=True)
    encoding = forms.ChoiceField(choices=ENCODING_CHOICES, required=False)
    delimiter = forms.ChoiceField(choices=DELIMITER_CHOICES, required=False)


class MappingForm(forms.Form):
    """One field choice per CSV column (``column_<i>``), the key, the match policy, the date
    order, and the file's encoding and delimiter (detected, changeable)."""

    match_on = forms.ChoiceField(choices=FanImport.MatchOn.choices, widget=forms.RadioSelect)
    on_match = forms.ChoiceField(choices=FanImport.OnMatch.choices, widget=forms.RadioSelect)
    date_order = forms.ChoiceField(choices=FanImport.DateOrder.choices)
    encoding = forms.ChoiceField(
        choices=[
            *ENCODINGS.items(),
            ("utf-16-le", "UTF-16 LE (no BOM)"),
            ("utf-16-be", "UTF-16 BE (no BOM)"),
        ]
    )
    delimiter = forms.ChoiceField(choices=list(DELIMITER_LABELS.items()))

    def __init__(self, *args: Any, fan_import: FanImport, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "match_on": fan_import.match_on,
                "on_match": fan_import.on_match,
                "date_order": fan_import.date_order,
                "encoding": fan_import.encoding,
                "delimiter": fan_import.delimiter,
                **{f"column_{i}": name for i, name in enumerate(fan_import.columns)},
            },
        )
        super().__init__(*args, **kwargs)
        self.header = fan_import.header
        for index, name in enumerate(fan_import.header):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                choices=FIELD_CHOICES, required=False, label=name or f"Column {index + 1}"
            )

    def column_fields(self) -> list[forms.BoundField]:
        return [self[f"column_{index}"] for index in range(len(self.header))]

    def columns(self) -> list[str]:
        return [self.cleaned_data.get(f"column_{i}") or "" for i in range(len(self.header))]
