from rest_framework import serializers


class KnownFieldsOnly(serializers.Serializer):
    """A request body whose unknown fields are refused, not ignored: where leaving a field
    out means "all" or "any" (seats to cancel, grades to wait for), a misspelt name would
    otherwise silently ask for everything."""

    def validate(self, data: dict) -> dict:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().validate(data)
