import factory

from accounts.models import User

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    name = factory.Faker("name")
    password = factory.django.Password(DEFAULT_PASSWORD)


class OperatorFactory(UserFactory):
    email = factory.Sequence(lambda n: f"operator{n}@example.com")
    is_staff = True
    is_superuser = True
