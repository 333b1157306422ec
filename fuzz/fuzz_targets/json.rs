//! The bounded JSON scanner: validation, element and member walks and string unescaping never
//! panic, and a string written by `write_string` unescapes back to itself.
#![no_main]

use emberchat::json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if json::validate(text).is_ok() {
        for element in json::array_elements(text) {
            let _ = json::kind(element);
            let _ = json::unescape(element);
        }
        for (key, value) in json::object_members(text) {
            let _ = json::unescape(key);
            let _ = json::value_len(value);
        }
        let _ = json::object_get(text, "serverOffset");
        json::visit_objects(text, &mut |object| {
            let _ = json::object_get(object, "token");
        });
    }
    let mut literal = String::new();
    json::write_string(&mut literal, text);
    assert_eq!(json::validate(&literal), Ok(literal.as_str()));
    assert_eq!(json::unescape(&literal).expect("own output unescapes"), text);
});
