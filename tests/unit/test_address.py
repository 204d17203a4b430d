"""An address as plain JSON: every field, in the order it is declared."""

from dataclasses import asdict

from restitution.domain.orders import Address


def test_an_address_as_a_dict_holds_every_field_in_order() -> None:
    address = Address("Ann Lee", "1 Main St", "Springfield", "12345", "US", line2="Apt 2")
    assert list(address.to_dict().items()) == list(asdict(address).items())
    assert Address(**address.to_dict()) == address
