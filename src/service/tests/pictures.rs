//! The routine picture: drawn on connect and on change at a bounded rate, republished on
//! birth, never without Home Assistant.

use super::*;

fn pictures(actions: &[Action]) -> Vec<PictureKey> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::DrawPicture(key) => Some(key.clone()),
            _ => None,
        })
        .collect()
}

fn with_picture(t0: Instant) -> Service {
    let config = ServiceConfig {
        routine_picture: true,
        ..config(None)
    };
    service_with(t0, settings(None), config, 1)
}

#[test]
fn the_routine_picture_follows_the_selection_at_a_bounded_rate_and_on_birth() {
    let t0 = Instant::now();
    let mut service = with_picture(t0);
    assert!(pictures(&drain(&mut service)).is_empty(), "none offline");
    service.handle_link(t0, LinkInput::Connected);
    let first = pictures(&drain(&mut service));
    assert_eq!(first.len(), 1, "drawn on connect");
    let key = first[0].clone();

    // A drawn picture is published retained; a stale one (another selection) is not.
    service.handle_picture(&key, Ok("<svg/>".into()));
    let published = drain(&mut service);
    let image: Vec<_> = publishes(&published, "massaged/dev/routine_image").collect();
    assert_eq!(image.len(), 1);
    assert!(image[0].retain && image[0].delivery == Delivery::Latest);

    // Three changes within the rate bound give one more picture, of the latest selection.
    command(&mut service, t0 + ms(100), r#"{"intensity":40}"#);
    command(&mut service, t0 + ms(200), r#"{"intensity":50}"#);
    let actions = command(&mut service, t0 + ms(300), r#"{"minutes":20}"#);
    assert!(pictures(&actions).is_empty(), "rate bound");
    let later = run_until(&mut service, t0 + ms(10_000));
    let drawn = pictures(&later);
    assert_eq!(drawn.len(), 1, "{drawn:?}");
    assert_eq!((drawn[0].intensity, drawn[0].minutes), (50, 20));
    service.handle_picture(&key, Ok("<svg/>".into()));
    assert!(
        publishes(&drain(&mut service), "massaged/dev/routine_image")
            .next()
            .is_none(),
        "a picture of an older selection is dropped"
    );

    // Home Assistant's birth republishes it with the rest.
    service.handle_link(
        t0 + ms(10_000),
        message("homeassistant/status", "online", false),
    );
    let after_birth = run_until(&mut service, t0 + ms(20_000));
    assert_eq!(pictures(&after_birth).len(), 1, "{after_birth:?}");
}

#[test]
fn no_picture_without_home_assistant() {
    let t0 = Instant::now();
    let mut service = connected(t0);
    command(&mut service, t0 + ms(100), r#"{"intensity":40}"#);
    assert!(pictures(&run_until(&mut service, t0 + ms(10_000))).is_empty());
}
