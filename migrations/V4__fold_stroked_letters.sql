-- Search keys fold letters with a built-in stroke as well ("Đặng" → "dang", "Łukasz" →
-- "lukasz"; see text::STROKED). Stored keys written before get the same map; the FTS
-- update trigger re-indexes the rows it touches.
UPDATE patients
SET name_key = replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(name_key,
        'đ', 'd'), 'ø', 'o'), 'ł', 'l'), 'ß', 'ss'), 'æ', 'ae'), 'œ', 'oe'), 'þ', 'th'), 'ı', 'i'), 'ħ', 'h'), 'ŧ', 't'),
    search_keys = replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(search_keys,
        'đ', 'd'), 'ø', 'o'), 'ł', 'l'), 'ß', 'ss'), 'æ', 'ae'), 'œ', 'oe'), 'þ', 'th'), 'ı', 'i'), 'ħ', 'h'), 'ŧ', 't')
WHERE name_key GLOB '*[đøłßæœþıħŧ]*' OR search_keys GLOB '*[đøłßæœþıħŧ]*';
