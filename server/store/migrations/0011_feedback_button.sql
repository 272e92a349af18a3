-- geopush schema v11: rich content of a delivery, and the button a click pressed.
-- rich: the image, alt text, deep link and buttons chosen for the user (the JSON of
-- triggers.decisions.rich.RichContent.as_json); NULL for a plain push.
-- button: the id of the button pressed, stored with the first "clicked" feedback.
ALTER TABLE deliveries ADD COLUMN rich jsonb;
ALTER TABLE deliveries ADD COLUMN button text;
